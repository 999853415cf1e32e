/**
 * Interface constraints, with Network framework's names (NWParameters
 * requiredInterface, requiredInterfaceType, prohibitedInterfaces, prohibitedInterfaceTypes,
 * prohibitExpensivePaths, prohibitConstrainedPaths). The net layer's Parameters carry these
 * fields and apply them through `interfacesSatisfying`; PathMonitor applies them to decide
 * which interfaces a path may use.
 */
import type { InterfaceType, NetworkInterface } from './interfaces.js';

export interface PathConstraints {
  /** Use only this interface (by name). */
  readonly requiredInterface?: string | undefined;
  /** Use only interfaces of this type. */
  readonly requiredInterfaceType?: InterfaceType | undefined;
  /** Never use these interfaces (by name). */
  readonly prohibitedInterfaces?: readonly string[] | undefined;
  /** Never use interfaces of these types. */
  readonly prohibitedInterfaceTypes?: readonly InterfaceType[] | undefined;
  /** Do not use expensive interfaces (cellular, or named in `costs.expensive`). */
  readonly prohibitExpensivePaths?: boolean | undefined;
  /** Do not use constrained interfaces (named in `costs.constrained`). */
  readonly prohibitConstrainedPaths?: boolean | undefined;
}

/**
 * Which interfaces cost more than others. Linux cannot tell a metered Wi-Fi hotspot or a
 * low-data mode from the kernel, so beyond "cellular is expensive" the application says.
 */
export interface InterfaceCosts {
  /** Interface names (or a predicate) to treat as expensive, in addition to cellular ones. */
  readonly expensive?: readonly string[] | ((iface: NetworkInterface) => boolean) | undefined;
  /** Interface names (or a predicate) to treat as constrained (low-data mode). */
  readonly constrained?: readonly string[] | ((iface: NetworkInterface) => boolean) | undefined;
}

function matches(rule: InterfaceCosts['expensive'], iface: NetworkInterface): boolean {
  if (rule === undefined) return false;
  if (typeof rule === 'function') return rule(iface);
  return rule.includes(iface.name);
}

/** Cellular interfaces are always expensive (as on Apple platforms); others when configured. */
export function isExpensiveInterface(iface: NetworkInterface, costs: InterfaceCosts = {}): boolean {
  return iface.type === 'cellular' || matches(costs.expensive, iface);
}

/** Only configuration makes an interface constrained: Linux has no low-data-mode flag. */
export function isConstrainedInterface(iface: NetworkInterface, costs: InterfaceCosts = {}): boolean {
  return matches(costs.constrained, iface);
}

/** Why an interface fails the constraints, or undefined when it satisfies them. */
export function constraintViolation(constraints: PathConstraints, iface: NetworkInterface, costs: InterfaceCosts = {}): string | undefined {
  if (constraints.requiredInterface !== undefined && iface.name !== constraints.requiredInterface) return `not the required interface ${constraints.requiredInterface}`;
  if (constraints.requiredInterfaceType !== undefined && iface.type !== constraints.requiredInterfaceType) return `not of the required type ${constraints.requiredInterfaceType}`;
  if (constraints.prohibitedInterfaces?.includes(iface.name)) return 'prohibited interface';
  if (constraints.prohibitedInterfaceTypes?.includes(iface.type)) return `prohibited type ${iface.type}`;
  if (constraints.prohibitExpensivePaths && isExpensiveInterface(iface, costs)) return 'expensive';
  if (constraints.prohibitConstrainedPaths && isConstrainedInterface(iface, costs)) return 'constrained';
  return undefined;
}

/**
 * The interfaces (in the given order) that satisfy the constraints. It only applies the
 * constraints: whether an interface is up or has addresses is the caller's business.
 */
export function interfacesSatisfying(constraints: PathConstraints, interfaces: readonly NetworkInterface[], costs: InterfaceCosts = {}): NetworkInterface[] {
  return interfaces.filter((i) => constraintViolation(constraints, i, costs) === undefined);
}

/** True when the constraints name loopback explicitly (by name or type): only then is it used by default. */
export function constraintsAllowLoopback(constraints: PathConstraints, interfaces: readonly NetworkInterface[]): boolean {
  if (constraints.requiredInterfaceType === 'loopback') return true;
  const req = constraints.requiredInterface;
  return req !== undefined && interfaces.some((i) => i.name === req && i.flags.loopback);
}
