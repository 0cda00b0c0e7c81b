/**
 * Shell completion scripts. Each is a thin function that asks `kumo __complete WORD...` (complete.ts)
 * for the candidates of the word under the cursor: commands, each command's own options, option
 * values (choices, files), and instance, image and network names from the live store.
 */

/** The words a script passes: everything after `kumo` up to the cursor, the current word last (maybe empty). */
const BASH = `# bash completion for kumo (kumo completion bash)
_kumo() {
  local line="\${COMP_LINE:0:COMP_POINT}" cur out l
  local -a words
  # split on blanks only: image names hold ':' (ubuntu:24.04), which bash's COMP_WORDS splits at
  read -r -a words <<< "$line"
  if [[ "$line" =~ [[:space:]]$ ]]; then words+=(""); fi
  cur="\${words[\${#words[@]}-1]}"
  COMPREPLY=()
  out="$(command kumo __complete "\${words[@]:1}" 2>/dev/null)" || return 0
  local files=0 colon=""
  [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]] && colon="\${cur%"\${cur##*:}"}"
  while IFS= read -r l; do
    case "$l" in
      :files) files=1 ;;
      :*) ;;
      *) COMPREPLY+=("\${l#"$colon"}") ;;
    esac
  done <<< "$out"
  if (( files )); then
    local f
    while IFS= read -r f; do [[ -n "$f" ]] && COMPREPLY+=("$f"); done < <(compgen -f -- "\${COMP_WORDS[COMP_CWORD]}")
    compopt -o filenames 2>/dev/null
  fi
  return 0
}
complete -o default -F _kumo kumo
`;

const ZSH = `#compdef kumo
# zsh completion for kumo (kumo completion zsh)
_kumo() {
  local -a out cands
  local l files=0
  out=("\${(@f)$(command kumo __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  for l in "\${out[@]}"; do
    case "$l" in
      :files) files=1 ;;
      :*) ;;
      *) cands+=("$l") ;;
    esac
  done
  (( \${#cands} )) && compadd -Q -- "\${cands[@]}"
  (( files )) && _files
  return 0
}
compdef _kumo kumo
`;

const FISH = `# fish completion for kumo (kumo completion fish)
function __kumo_complete
    set -l words (commandline -opc) (commandline -ct)
    for l in (command kumo __complete $words[2..-1] 2>/dev/null)
        switch $l
            case ':files'
                __fish_complete_path (commandline -ct)
            case ':*'
            case '*'
                echo $l
        end
    end
end
complete -c kumo -f -a '(__kumo_complete)'
`;

export function completionScript(shell: 'bash' | 'zsh' | 'fish'): string {
  return shell === 'bash' ? BASH : shell === 'zsh' ? ZSH : FISH;
}
