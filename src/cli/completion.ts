/**
 * Shell completion scripts, generated from the command definitions. Instance names come from a
 * listing of KUMO_HOME/instances at completion time (instant: no kumo start-up per keystroke).
 */
import { GLOBAL_OPTIONS, type CommandDef } from './command.js';

/** Commands whose first argument is an instance name. */
const TAKES_INSTANCE = new Set(['start', 'stop', 'restart', 'delete', 'info', 'ssh', 'exec', 'logs', 'port', 'capture', 'consolidate', 'clone', 'snapshot']);

function flags(def: CommandDef): string[] {
  return Object.keys({ ...GLOBAL_OPTIONS, ...(def.options ?? {}) }).map((o) => `--${o}`);
}

/** The instance folder listing, as a shell snippet for each shell (no kumo start-up cost). */
const INSTANCES_SH = 'ls "${KUMO_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/kumo}/instances" 2>/dev/null';

export function completionScript(shell: 'bash' | 'zsh' | 'fish', defs: CommandDef[]): string {
  const names = defs.map((d) => d.name);
  if (shell === 'fish') {
    const lines = ['# fish completion for kumo', 'complete -c kumo -f'];
    lines.push(`complete -c kumo -n "__fish_use_subcommand" -a "${names.join(' ')}"`);
    for (const d of defs) {
      lines.push(`complete -c kumo -n "__fish_seen_subcommand_from ${d.name}" -d ${JSON.stringify(d.summary)} -a ""`);
      if (d.subcommands?.length)
        lines.push(`complete -c kumo -n "__fish_seen_subcommand_from ${d.name}" -a "${d.subcommands.map((s) => s.name).join(' ')}"`);
      for (const [o, spec] of Object.entries({ ...GLOBAL_OPTIONS, ...(d.options ?? {}), ...Object.assign({}, ...(d.subcommands ?? []).map((s) => s.options ?? {})) })) {
        const choices = (spec as { choices?: readonly string[] }).choices;
        lines.push(
          `complete -c kumo -n "__fish_seen_subcommand_from ${d.name}" -l ${o}${(spec as { type: string }).type === 'string' ? ' -r' : ''}${choices ? ` -a "${choices.join(' ')}"` : ''} -d ${JSON.stringify((spec as { description: string }).description)}`,
        );
      }
      if (TAKES_INSTANCE.has(d.name)) lines.push(`complete -c kumo -n "__fish_seen_subcommand_from ${d.name}" -a "(${INSTANCES_SH})"`);
    }
    return lines.join('\n') + '\n';
  }
  const cases = defs
    .map((d) => {
      const subs = d.subcommands?.map((s) => s.name) ?? [];
      const subFlags = d.subcommands?.flatMap((s) => flags(s)) ?? [];
      const words = [...new Set([...subs, ...flags(d), ...subFlags])].join(' ');
      const inst = TAKES_INSTANCE.has(d.name) ? ` $(${INSTANCES_SH})` : '';
      return `    ${d.name}) words="${words}${inst}" ;;`;
    })
    .join('\n');
  const body = `_kumo_words() {
  local cmd="$1" words=""
  case "$cmd" in
${cases}
  esac
  echo "$words"
}`;
  if (shell === 'bash') {
    return `# bash completion for kumo
${body}
_kumo() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${names.join(' ')} ${Object.keys(GLOBAL_OPTIONS).map((o) => `--${o}`).join(' ')} --version" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_kumo_words "$cmd")" -- "$cur"))
    [[ "$cur" == */* || "$cur" == .* ]] && COMPREPLY+=($(compgen -f -- "$cur"))
  fi
}
complete -o default -F _kumo kumo
`;
  }
  return `#compdef kumo
# zsh completion for kumo
${body}
_kumo() {
  if (( CURRENT == 2 )); then
    compadd -- ${names.join(' ')}
  else
    compadd -- $(_kumo_words "\${words[2]}")
    _files
  fi
}
compdef _kumo kumo
`;
}
