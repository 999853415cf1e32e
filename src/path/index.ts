// The path layer: network interfaces, their constraints, and PathMonitor.
export { listInterfaces, selectInterfaces, interfaceForSource, inSubnet, ipv6Scope, expandIPv6 } from './interfaces.js';
export type { NetworkInterface, InterfaceType, InterfaceFlags, InterfaceAddress, AddressScope } from './interfaces.js';
export { interfacesSatisfying, constraintViolation, isExpensiveInterface, isConstrainedInterface, constraintsAllowLoopback } from './constraints.js';
export type { PathConstraints, InterfaceCosts } from './constraints.js';
export { PathMonitor, computePath, diffInterfaces } from './monitor.js';
export type { Path, PathStatus, PathMonitorOptions, PathMonitorEvents, InterfaceChange, InterfaceChangeKind } from './monitor.js';
