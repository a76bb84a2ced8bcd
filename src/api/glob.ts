/**
 * Glob patterns of the `channels` method, with the syntax of github.com/gobwas/glob as
 * Centrifugo compiles it (no separators, CFG `internal/survey/survey.go`):
 *
 *   *        any run of characters, ':' included (none too)
 *   ?        exactly one character
 *   [abc]    one of; [a-z] a range; [!abc] none of
 *   {a,b*}   one of the alternatives (which may hold patterns themselves)
 *   \x       x itself
 *
 * A pattern that does not parse is a 107.
 */
import { ApiError, ApiErrors } from './errors.js';

/** Characters with a meaning in a regex (outside a class; with the 'u' flag nothing else may be escaped). */
const SYNTAX = /[.*+?^${}()|[\]\\/]/g;
/** Characters with a meaning inside a regex class. */
const CLASS_SYNTAX = /[\\\]^[-]/g;

function literal(ch: string): string {
  return ch.replace(SYNTAX, '\\$&');
}

function classLiteral(ch: string): string {
  return ch.replace(CLASS_SYNTAX, '\\$&');
}

class GlobParser {
  private i = 0;
  constructor(private readonly p: string) {}

  parse(): string {
    const source = this.sequence(false);
    if (this.i < this.p.length) throw this.invalid('unexpected character');
    return source;
  }

  private sequence(inAlternative: boolean): string {
    let out = '';
    while (this.i < this.p.length) {
      const c = this.p[this.i]!;
      if (inAlternative && (c === ',' || c === '}')) return out;
      this.i++;
      if (c === '*') out += '[\\s\\S]*';
      else if (c === '?') out += '[\\s\\S]';
      else if (c === '[') out += this.charClass();
      else if (c === '{') out += this.alternatives();
      else if (c === '\\') out += literal(this.escaped());
      else out += literal(c);
    }
    if (inAlternative) throw this.invalid('unclosed {');
    return out;
  }

  private alternatives(): string {
    const options: string[] = [];
    for (;;) {
      options.push(this.sequence(true));
      if (this.p[this.i++] === '}') return `(?:${options.join('|')})`;
    }
  }

  private charClass(): string {
    const negate = this.p[this.i] === '!';
    if (negate) this.i++;
    let body = '';
    while (this.i < this.p.length) {
      const c = this.p[this.i++]!;
      if (c === ']') {
        if (body === '') throw this.invalid('empty []');
        return `[${negate ? '^' : ''}${body}]`;
      }
      body += c === '-' ? '-' : classLiteral(c === '\\' ? this.escaped() : c);
    }
    throw this.invalid('unclosed [');
  }

  private escaped(): string {
    if (this.i >= this.p.length) throw this.invalid('trailing \\');
    return this.p[this.i++]!;
  }

  private invalid(why: string): ApiError {
    return new ApiError(ApiErrors.badRequest, `pattern: ${why}`);
  }
}

/** A matcher for one pattern; throws 107 for a pattern that does not parse. */
export function compileGlob(pattern: string): (name: string) => boolean {
  const source = new GlobParser(pattern).parse();
  let regex: RegExp;
  try {
    regex = new RegExp(`^${source}$`, 'u');
  } catch {
    throw new ApiError(ApiErrors.badRequest, 'pattern: invalid character class');
  }
  return (name) => regex.test(name);
}
