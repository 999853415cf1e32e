/**
 * Untrusted names (peers' display names, resource names) shown to people. Below every
 * layer (like errors.ts) so that session/ can refuse such names and cli/ can print them.
 *
 * "Invisible" here is what can make two names look alike or a name look like something
 * else on a terminal: controls (C0, C1, DEL), format characters (\p{Cf}: zero-width
 * space U+200B, BOM U+FEFF, soft hyphen U+00AD, bidi overrides and isolates, tags…),
 * line and paragraph separators (U+2028, U+2029), lone surrogates, and the Hangul
 * fillers that render as blank letters. A zero-width joiner between two emoji is kept:
 * it is how 👩‍💻 is spelled, not a disguise.
 */

// U+115F, U+1160, U+3164, U+FFA0: Hangul fillers (letters that draw nothing).
const INVISIBLE_SOURCE = String.raw`(?:(?<!\p{Extended_Pictographic}(?:\u{FE0F}|\p{Emoji_Modifier})?)\u200D|\u200D(?!\p{Extended_Pictographic})|[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0]|(?!\u200D)\p{Cf})`;
const INVISIBLE = new RegExp(INVISIBLE_SOURCE, 'u');
const INVISIBLE_GLOBAL = new RegExp(INVISIBLE_SOURCE, 'gu');

/** The first invisible character in `text` (see above), or undefined. */
export function findInvisible(text: string): string | undefined {
  return INVISIBLE.exec(text)?.[0];
}

/** `U+200B`-style name of a character, for messages. */
export function codePointLabel(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * `text` with every invisible character written as an escape (`\u200B`, `\u{E0041}`), so
 * what a terminal shows is what the name is. Everything else is unchanged: safe to call
 * on any name before it is printed, and the identity on ordinary names.
 */
export function escapeForDisplay(text: string): string {
  return text.replace(INVISIBLE_GLOBAL, (c) => {
    const cp = c.codePointAt(0) ?? 0;
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}
