/** scripts/check-functions.ts: what counts as a long function, and what as a data table. */
import { describe, expect, it } from 'vitest';
import { longFunctionsIn } from '../../scripts/check-functions.js';

const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');

describe('check-functions', () => {
  it('reports functions, methods and arrows over the limit with their line and name', () => {
    const text = [
      `function short() {\n${body(3)}\n}`,
      `export function long() {\n${body(10)}\n}`,
      `class Box {\n  method() {\n${body(10)}\n  }\n}`,
      `const arrow = () => {\n${body(10)}\n};`,
    ].join('\n');
    const found = longFunctionsIn('x.ts', text, 8).map((f) => [f.line, f.name, f.lines]);
    expect(found).toEqual([
      [6, 'long', 12],
      [19, 'Box.method', 12],
      [32, 'arrow', 12],
    ]);
  });

  it('counts a closure with its inner functions: cutting it up inside does not make it short', () => {
    const text = `function outer() {\n  const a = () => {\n${body(4)}\n  };\n  const b = () => {\n${body(4)}\n  };\n}`;
    expect(longFunctionsIn('x.ts', text, 8).map((f) => f.name)).toEqual(['outer']);
  });

  it('does not count the inner lines of data: literals, templates, tables with no function', () => {
    const table = `  const table = {\n${Array.from({ length: 20 }, (_, i) => `    k${i}: ${i},`).join('\n')}\n  };`;
    const page = `  const html = \`<html>\n${'<p>x</p>\n'.repeat(20)}</html>\`;`;
    const text = `function render() {\n${table}\n${page}\n  return { table, html };\n}`;
    expect(longFunctionsIn('x.ts', text, 8)).toEqual([]);
  });

  it('measures a table of handlers: its functions are code', () => {
    const text = `const handlers = {\n  a() {\n${body(10)}\n  },\n  b: () => 1,\n};`;
    expect(longFunctionsIn('x.ts', text, 8).map((f) => f.name)).toEqual(['a']);
  });
});
