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
 * A pattern that does not parse, or is longer than MAX_PATTERN_LENGTH, is a 107.
 *
 * The pattern becomes a small automaton that is run over the name with a set of current
 * states, never by backtracking: a name costs (name length × pattern length) at worst, a few
 * milliseconds for a hostile 1,024-character pattern against a 255-character name (the
 * `channels` method bounds the total, src/api/nodes.ts). It used to become a regular
 * expression, and `*a*a*a*a*a*a*b` against one subscribed channel of a hundred `a`s kept the
 * event loop busy for minutes (backtracking is exponential in the stars).
 */
import { ApiError, ApiErrors } from './errors.js';

/** Longer than any sensible pattern: channel names are at most 255 bytes. */
export const MAX_PATTERN_LENGTH = 1024;

/** What one character must be: a literal, anything, or a (negated) set of code point ranges. */
type Test = { kind: 'char'; cp: number } | { kind: 'any' } | { kind: 'set'; negate: boolean; ranges: [number, number][] };

/**
 * A state: `test` consumes one character and moves to `next`; without a test it is a free
 * move to each of `jumps`. The last state of the automaton accepts.
 */
interface State {
  test?: Test;
  next?: number;
  jumps: number[];
}

class GlobCompiler {
  private i = 0;
  readonly states: State[] = [];
  private readonly chars: string[];

  constructor(pattern: string) {
    this.chars = [...pattern];
  }

  /** The automaton; its start is state 0, its accepting state the last one. */
  compile(): State[] {
    const start = this.add();
    const end = this.sequence(start, false);
    if (this.i < this.chars.length) throw invalid('unexpected character');
    this.jump(end, this.add());
    return this.states;
  }

  private add(state: Partial<State> = {}): number {
    this.states.push({ jumps: [], ...state });
    return this.states.length - 1;
  }

  private jump(from: number, to: number): void {
    this.states[from]!.jumps.push(to);
  }

  /** Compiles pattern elements reached from `from`; returns the state where they end. */
  private sequence(from: number, inAlternative: boolean): number {
    let at = from;
    while (this.i < this.chars.length) {
      const c = this.chars[this.i]!;
      if (inAlternative && (c === ',' || c === '}')) return at;
      this.i++;
      if (c === '*') {
        // `**` means what `*` does; one loop instead of a chain keeps the automaton small.
        while (this.chars[this.i] === '*') this.i++;
        at = this.star(at);
      }
      else if (c === '{') at = this.alternatives(at);
      else at = this.step(at, this.test(c));
    }
    if (inAlternative) throw invalid('unclosed {');
    return at;
  }

  private test(c: string): Test {
    if (c === '?') return { kind: 'any' };
    if (c === '[') return this.charSet();
    const ch = c === '\\' ? this.escaped() : c;
    return { kind: 'char', cp: ch.codePointAt(0)! };
  }

  /** One character matching `test`, from `from`. */
  private step(from: number, test: Test): number {
    const state = this.add({ test });
    this.jump(from, state);
    const after = this.add();
    this.states[state]!.next = after;
    return after;
  }

  /** Any run of characters: a fork that takes one more character and comes back, or goes on. */
  private star(from: number): number {
    const fork = this.add();
    const after = this.add();
    this.jump(from, fork);
    this.jump(fork, this.add({ test: { kind: 'any' }, next: fork }));
    this.jump(fork, after);
    return after;
  }

  private alternatives(from: number): number {
    const join = this.add();
    for (;;) {
      const option = this.add();
      this.jump(from, option);
      this.jump(this.sequence(option, true), join);
      if (this.chars[this.i++] === '}') return join;
    }
  }

  private charSet(): Test {
    const negate = this.chars[this.i] === '!';
    if (negate) this.i++;
    // Each member: its code point, and whether it was an unescaped '-' (a range's dash).
    const members: { cp: number; dash: boolean }[] = [];
    while (this.i < this.chars.length) {
      const c = this.chars[this.i++]!;
      if (c === ']') {
        if (members.length === 0) throw invalid('empty []');
        return { kind: 'set', negate, ranges: rangesOf(members) };
      }
      const ch = c === '\\' ? this.escaped() : c;
      members.push({ cp: ch.codePointAt(0)!, dash: c === '-' });
    }
    throw invalid('unclosed [');
  }

  private escaped(): string {
    if (this.i >= this.chars.length) throw invalid('trailing \\');
    return this.chars[this.i++]!;
  }
}

/** `a-z` is a range when the dash stands between two members; elsewhere a dash is itself. */
function rangesOf(members: { cp: number; dash: boolean }[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (let k = 0; k < members.length; k++) {
    const lo = members[k]!.cp;
    if (members[k + 1]?.dash && k + 2 < members.length) {
      const hi = members[k + 2]!.cp;
      if (hi < lo) throw invalid('invalid character class');
      ranges.push([lo, hi]);
      k += 2;
    } else ranges.push([lo, lo]);
  }
  return ranges;
}

function invalid(why: string): ApiError {
  return new ApiError(ApiErrors.badRequest, `pattern: ${why}`);
}

function passes(test: Test, cp: number): boolean {
  if (test.kind === 'any') return true;
  if (test.kind === 'char') return test.cp === cp;
  return test.ranges.some(([lo, hi]) => cp >= lo && cp <= hi) !== test.negate;
}

/**
 * Runs the automaton: the current states are those that test a character (or accept), and a
 * step follows free moves afresh, visiting each state at most once (a mark per state: the
 * step that last reached it). So a character costs at most every state and jump once, however
 * the stars and alternatives nest. The lists and marks are reused: matching allocates nothing.
 */
class Runner {
  private current: Int32Array;
  private next: Int32Array;
  private readonly stack: Int32Array;
  private readonly mark: Uint32Array;
  private step = 0;
  private readonly accept: number;

  constructor(private readonly states: State[]) {
    this.current = new Int32Array(states.length);
    this.next = new Int32Array(states.length);
    this.stack = new Int32Array(states.length);
    this.mark = new Uint32Array(states.length);
    this.accept = states.length - 1;
  }

  matches(name: string): boolean {
    let count = this.follow([0], this.current);
    for (const ch of name) {
      const cp = ch.codePointAt(0)!;
      const moved: number[] = [];
      for (let k = 0; k < count; k++) {
        const state = this.states[this.current[k]!]!;
        if (state.test && passes(state.test, cp)) moved.push(state.next!);
      }
      count = this.follow(moved, this.next);
      if (count === 0) return false;
      [this.current, this.next] = [this.next, this.current];
    }
    for (let k = 0; k < count; k++) if (this.current[k] === this.accept) return true;
    return false;
  }

  /** Writes into `into` the testing (or accepting) states reachable from `from`; returns how many. */
  private follow(from: number[], into: Int32Array): number {
    const step = ++this.step;
    let depth = 0;
    let count = 0;
    for (const s of from) {
      if (this.mark[s] === step) continue;
      this.mark[s] = step;
      this.stack[depth++] = s;
    }
    while (depth > 0) {
      const s = this.stack[--depth]!;
      const state = this.states[s]!;
      if (state.test || s === this.accept) into[count++] = s;
      for (const to of state.jumps) {
        if (this.mark[to] === step) continue;
        this.mark[to] = step;
        this.stack[depth++] = to;
      }
    }
    return count;
  }
}

/** A matcher for one pattern; throws 107 for a pattern that does not parse or is too long. */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (pattern.length > MAX_PATTERN_LENGTH) throw invalid(`longer than ${MAX_PATTERN_LENGTH} characters`);
  const runner = new Runner(new GlobCompiler(pattern).compile());
  return (name) => runner.matches(name);
}
