/** The README's examples, as printed: the fenced block that follows a marker comment. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const repo = process.env.KUMO_REPO ?? process.cwd();

/** The ```lang block after `marker` (e.g. '<!-- readme-example:js') in README.md. */
export function readmeBlock(marker: string, lang: string): string {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker} marker`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(at));
  if (!m) throw new Error(`README.md: no \`\`\`${lang} block after ${marker}`);
  return m[1]!;
}
