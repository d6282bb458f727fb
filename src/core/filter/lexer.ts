/** Splits a filter into tokens, each with its 1-based column for error messages. */
import { FleetError } from '../errors.js';

export type TokenType = 'word' | 'string' | 'op' | '(' | ')' | ',' | 'end';

export interface Token {
  type: TokenType;
  /** The word, the unescaped string, or the operator / punctuation itself; '' at the end. */
  text: string;
  column: number;
}

/** Characters of a bare word: letters and digits of any script, and -_.:/*?@+~^ */
const WORD = /[\p{L}\p{N}\-_.:/*?@+~^]+/uy;
const OPS = ['!=', '<=', '>=', '=', '<', '>'];

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const column = i + 1;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ type: c, text: c, column });
      i++;
    } else if (c === '"' || c === "'") {
      let value = '';
      i++;
      for (;;) {
        const d = text[i];
        if (d === undefined) {
          throw new FleetError(
            'FILTER_SYNTAX',
            `column ${column}: unterminated string, expected a closing ${c}`,
            {
              column,
              expected: c,
              found: 'end of input',
            },
          );
        }
        i++;
        if (d === c) break;
        if (d === '\\' && i < text.length) {
          // Backslash makes the next character literal: \" \' \\
          value += text[i];
          i++;
        } else {
          value += d;
        }
      }
      tokens.push({ type: 'string', text: value, column });
    } else {
      const op = OPS.find((o) => text.startsWith(o, i));
      if (op) {
        tokens.push({ type: 'op', text: op, column });
        i += op.length;
        continue;
      }
      WORD.lastIndex = i;
      const word = WORD.exec(text)?.[0];
      if (word === undefined) {
        const found = String.fromCodePoint(text.codePointAt(i)!);
        throw new FleetError('FILTER_SYNTAX', `column ${column}: unexpected character '${found}'`, {
          column,
          expected: 'a field, value, operator or parenthesis',
          found,
        });
      }
      tokens.push({ type: 'word', text: word, column });
      i += word.length;
    }
  }
  tokens.push({ type: 'end', text: '', column: text.length + 1 });
  return tokens;
}
