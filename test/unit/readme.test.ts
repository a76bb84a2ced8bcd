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

  it('lists every official SDK with the protocol it speaks', () => {
    const sdks: [string, string][] = [
      ['`centrifuge` (centrifuge-js)', 'JSON'],
      ['`centrifuge-go`', 'JSON'],
      ['`centrifuge-python`', 'JSON'],
      ['`centrifuge-swift`', 'Protobuf'],
      ['`centrifuge-java`', 'Protobuf'],
      ['`centrifuge-dart`', 'Protobuf'],
    ];
    for (const [sdk, protocol] of sdks) {
      const row = readme.split('\n').find((line) => line.startsWith(`| ${sdk} |`));
      expect(row, `a README row for ${sdk}`).toBeDefined();
      expect(row!.split('|')[3]).toContain(protocol);
    }
    expect(readme).not.toMatch(/does not serve (it )?yet|refuses (it|Protobuf)/);
  });

  it('opens with the two commands', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toContain('npx tidings dev');
    expect(firstBlock).toContain('npm test');
  });
});
