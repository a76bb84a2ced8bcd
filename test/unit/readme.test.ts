/** The README stays true: every setting the code reads is documented there. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES } from '../../src/config/index.js';

describe('README', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

  it('documents every environment variable', () => {
    expect(ENV_NAMES.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });

  it('opens with the two commands', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toContain('npx tidings dev');
    expect(firstBlock).toContain('npm test');
  });
});
