/**
 * Help text, generated from the command definitions.
 */
import { GLOBAL_OPTIONS, optionUsage, usageWords, type CommandDef, type OptionSpec } from './command.js';
import type { Output } from './output.js';
import { aliasesOf } from './registry.js';

/** `list (ls)`: a command's name with its aliases. */
function nameWithAliases(name: string): string {
  const a = aliasesOf(name);
  return a.length ? `${name} (${a.join(', ')})` : name;
}

/** Order of the main help; commands not listed here follow alphabetically. */
const GROUPS: [string, string[]][] = [
  ['Machines', ['launch', 'create', 'start', 'stop', 'restart', 'delete', 'list', 'info', 'shell', 'ssh', 'ssh-config', 'exec', 'cp', 'logs', 'port', 'set', 'repair']],
  ['Golden images', ['capture', 'consolidate', 'clone', 'snapshot']],
  ['Images and disks', ['image', 'disk', 'seed']],
  ['Setup', ['config', 'doctor', 'completion', 'help']],
];

export function renderMainHelp(defs: CommandDef[], out: Output): string {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const seen = new Set<string>();
  const width = Math.max(...defs.map((d) => nameWithAliases(d.name).length)) + 2;
  const lines: string[] = [
    'kumo: a personal cloud on one machine. Cached images, copy-on-write VMs with cloud-init.',
    '',
    `${out.paint('bold', 'Usage:')} ${wrapWords(['kumo', ...Object.entries(GLOBAL_OPTIONS).map(([n, o]) => optionUsage(n, o)), 'COMMAND', '[ARGS...]'], 12)}`,
  ];
  for (const [title, names] of GROUPS) {
    const present = names.filter((n) => byName.has(n));
    if (!present.length) continue;
    lines.push('', out.paint('bold', `${title}:`));
    for (const n of present) {
      seen.add(n);
      lines.push(`  ${nameWithAliases(n).padEnd(width)}${byName.get(n)!.summary}`);
    }
  }
  const others = defs.filter((d) => !seen.has(d.name));
  if (others.length) {
    lines.push('', out.paint('bold', 'Other:'));
    for (const d of others) lines.push(`  ${nameWithAliases(d.name).padEnd(width)}${d.summary}`);
  }
  lines.push('', out.paint('bold', 'Global options:'), ...renderOptions(GLOBAL_OPTIONS), `  ${'-V, --version'.padEnd(24)}print the version`);
  lines.push(
    '',
    out.paint('bold', 'Examples:'),
    '  kumo launch kumo-test --name web      # a VM from a built image, ready for ssh',
    '  kumo exec web -- uname -a',
    '  kumo list',
    '',
    "Run 'kumo help COMMAND' for a command's options and examples.",
  );
  return lines.join('\n');
}

export function renderCommandHelp(def: CommandDef, path: string, out: Output): string {
  const lines: string[] = [`${out.paint('bold', 'Usage:')} ${wrapWords(['kumo', ...usageWords(def, path)], 7 + `kumo ${path} `.length)}`, '', def.summary];
  const aliases = path.includes(' ') ? [] : aliasesOf(path);
  if (aliases.length) lines.push('', `${out.paint('bold', 'Aliases:')} ${aliases.map((a) => `kumo ${a}`).join(', ')}`);
  if (def.description) lines.push('', def.description.trim());
  if (def.subcommands?.length) {
    const w = Math.max(...def.subcommands.map((s) => s.name.length)) + 2;
    lines.push('', out.paint('bold', 'Commands:'));
    for (const s of def.subcommands) lines.push(`  ${s.name.padEnd(w)}${s.summary}`);
    lines.push('', `Run 'kumo help ${path} COMMAND' for details.`);
  }
  if (def.args?.some((a) => a.description)) {
    lines.push('', out.paint('bold', 'Arguments:'));
    for (const a of def.args) if (a.description) lines.push(`  ${a.name.toUpperCase().padEnd(22)}${a.description}`);
  }
  if (def.options && Object.keys(def.options).length) lines.push('', out.paint('bold', 'Options:'), ...renderOptions(def.options));
  lines.push('', out.paint('bold', 'Global options:'), ...renderOptions(GLOBAL_OPTIONS));
  if (def.examples?.length) {
    lines.push('', out.paint('bold', 'Examples:'));
    for (const e of def.examples) lines.push(`  ${e}`);
  }
  return lines.join('\n');
}

/** Words joined by spaces, wrapped before `width` columns; continuation lines are indented under the first. */
function wrapWords(words: readonly string[], indent: number, width = 100): string {
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    const start = lines.length ? indent : 7; // 'Usage: '
    if (cur && start + cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function renderOptions(opts: Record<string, OptionSpec>): string[] {
  return Object.entries(opts).map(([name, o]) => {
    let flag = `${o.short ? `-${o.short}, ` : '    '}--${name}`;
    if (o.type === 'string') flag += ` ${o.placeholder ?? 'VALUE'}`;
    let desc = o.description;
    if (o.choices) desc += ` (${o.choices.join('|')})`;
    if (o.multiple) desc += ' (repeatable)';
    return flag.length >= 24 ? `  ${flag}\n  ${' '.repeat(24)}${desc}` : `  ${flag.padEnd(24)}${desc}`;
  });
}

// ---------------------------------------------------------------------------------------------
// docs/cli.md: the same tables as --help, as Markdown (`kumo help --markdown > docs/cli.md`;
// test/unit/cli/cli-docs.test.ts fails when the file is stale)

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdOptions(opts: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `\`-${o.short}\`, ` : ''}\`--${o.type === 'boolean' && o.default === true ? `[no-]${name}` : name}${o.type === 'string' ? ` ${o.placeholder ?? 'VALUE'}` : ''}\``;
    let desc = o.description;
    if (o.choices) desc += ` (${o.choices.join('\\|')})`;
    if (o.multiple) desc += ' (repeatable)';
    if (o.required) desc += ' (required)';
    return `| ${flag} | ${mdCell(desc)} |`;
  });
  return ['| Option | Meaning |', '| --- | --- |', ...rows];
}

function mdCommand(def: CommandDef, path: string, level: number): string[] {
  const out: string[] = [`${'#'.repeat(level)} kumo ${path}`, '', `${def.summary.charAt(0).toUpperCase()}${def.summary.slice(1)}.`, ''];
  const aliases = path.includes(' ') ? [] : aliasesOf(path);
  if (aliases.length) out.push(`Aliases: ${aliases.map((a) => `\`kumo ${a}\``).join(', ')}`, '');
  out.push('```', `kumo ${usageWords(def, path).join(' ')}`, '```', '');
  if (def.description) out.push(def.description.trim(), '');
  if (def.args?.some((a) => a.description)) {
    out.push('| Argument | Meaning |', '| --- | --- |');
    for (const a of def.args) if (a.description) out.push(`| \`${(a.placeholder ?? a.name.toUpperCase()) + (a.variadic ? '...' : '')}\` | ${mdCell(a.description)}${a.required ? '' : ' (optional)'} |`);
    out.push('');
  }
  if (def.options && Object.keys(def.options).length) out.push(...mdOptions(def.options), '');
  if (def.examples?.length) out.push('Examples:', '', '```sh', ...def.examples, '```', '');
  for (const s of def.subcommands ?? []) out.push(...mdCommand(s, `${path} ${s.name}`, level + 1));
  return out;
}

/** The whole CLI reference (docs/cli.md), in the order of the main help. */
export function renderMarkdown(defs: CommandDef[]): string {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const ordered: CommandDef[] = [];
  for (const [, names] of GROUPS) for (const n of names) if (byName.has(n)) ordered.push(byName.get(n)!);
  for (const d of defs) if (!ordered.includes(d)) ordered.push(d);
  const lines = [
    '# kumo command reference',
    '',
    '<!-- Generated from the option tables of the commands (the same as `kumo help`): do not edit.',
    '     Regenerate with: node bin/kumo.js help --markdown > docs/cli.md -->',
    '',
    'Commands:',
    '',
    ...ordered.map((d) => `- [\`kumo ${d.name}\`](#kumo-${d.name.replace(/[^a-z0-9-]/g, '')})${aliasesOf(d.name).length ? ` (${aliasesOf(d.name).join(', ')})` : ''}: ${d.summary}`),
    '',
    '## Global options',
    '',
    'Accepted before, between and after the command words.',
    '',
    ...mdOptions(GLOBAL_OPTIONS),
    '| `-V`, `--version` | print the version |',
    '',
  ];
  for (const d of ordered) lines.push(...mdCommand(d, d.name, 2));
  return lines.join('\n').replace(/\n+$/, '\n');
}
