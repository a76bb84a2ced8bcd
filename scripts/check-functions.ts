/**
 * `tsx scripts/check-functions.ts`: small pieces, checked (STYLE.md habit 14, issue 10).
 *
 * Reports every function, method, constructor, accessor and arrow in src/ longer than
 * MAX_LINES, as `src/file.ts:line name (N lines)`. A function is measured from its first to
 * its last line, nested functions included: a long closure is long however it is cut up
 * inside. Data tables are the exception the issue allows: the inner lines of a multi-line
 * literal that holds no function (an object or array literal, a string, a template such as
 * an HTML page) are data, and are not counted. A table of handlers is not data: its
 * functions are measured, each on its own.
 *
 * Parsed with the TypeScript compiler API, so a brace in a string or a regex cannot fool it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** "Around 10–20 lines, none over ~60" (issue 10). */
export const MAX_LINES = 60;

export interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

type FunctionNode = ts.FunctionLikeDeclaration & { body: ts.Node };

function isMeasured(node: ts.Node): node is FunctionNode {
  return (
    (ts.isFunctionDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)) &&
    node.body !== undefined
  );
}

/** What a reader would call the function: its own name, or the name it is bound to. */
function nameOf(node: FunctionNode): string {
  if (ts.isConstructorDeclaration(node)) return `${classNameOf(node)}.constructor`;
  if (node.name && !ts.isComputedPropertyName(node.name)) {
    const own = node.name.getText();
    return ts.isClassLike(node.parent) ? `${classNameOf(node)}.${own}` : own;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText();
  }
  if (ts.isCallExpression(parent)) return `(callback of ${parent.expression.getText().slice(0, 40)})`;
  return '(anonymous)';
}

function classNameOf(node: ts.Node): string {
  const cls = node.parent;
  return ts.isClassLike(cls) && cls.name ? cls.name.text : '(class)';
}

const LITERALS = new Set([
  ts.SyntaxKind.ObjectLiteralExpression,
  ts.SyntaxKind.ArrayLiteralExpression,
  ts.SyntaxKind.TemplateExpression,
  ts.SyntaxKind.NoSubstitutionTemplateLiteral,
  ts.SyntaxKind.StringLiteral,
]);

function holdsFunction(node: ts.Node): boolean {
  return isMeasured(node) || (ts.forEachChild(node, holdsFunction) ?? false);
}

function linesOf(source: ts.SourceFile, node: ts.Node): [first: number, last: number] {
  const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
  return [first, source.getLineAndCharacterOfPosition(node.getEnd()).line];
}

/** Lines (0-based) that are data: after the first line of a multi-line literal with no function in it. */
function dataLines(source: ts.SourceFile): Set<number> {
  const data = new Set<number>();
  const visit = (node: ts.Node) => {
    const [first, last] = linesOf(source, node);
    if (LITERALS.has(node.kind) && last > first && !holdsFunction(node)) {
      for (let line = first + 1; line <= last; line++) data.add(line);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return data;
}

export function longFunctionsIn(file: string, text: string, maxLines = MAX_LINES): LongFunction[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const data = dataLines(source);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node) => {
    if (isMeasured(node)) {
      const [first, last] = linesOf(source, node);
      let lines = 0;
      for (let line = first; line <= last; line++) if (!data.has(line)) lines++;
      if (lines > maxLines) found.push({ file, line: first + 1, name: nameOf(node), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

export function checkFunctions(root: string, maxLines = MAX_LINES): LongFunction[] {
  return sourceFiles(root).flatMap((file) => longFunctionsIn(file, readFileSync(file, 'utf8'), maxLines));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(import.meta.dirname, '..', 'src');
  const long = checkFunctions(root);
  const where = (f: LongFunction) => `${relative(resolve(root, '..'), f.file)}:${f.line}`;
  for (const f of long) console.error(`${where(f)} ${f.name} (${f.lines} lines of code)`);
  if (long.length > 0) {
    console.error(`check:functions: ${long.length} function(s) over ${MAX_LINES} lines`);
    process.exit(1);
  }
  console.log(`check:functions: no function over ${MAX_LINES} lines`);
}
