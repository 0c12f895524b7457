# bash completion for socktune, made from the settings table by crates/socktune-cli/src/completions.rs; rewrite with SOCKTUNE_UPDATE_DOCS=1 cargo test -p socktune-cli
_socktune() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words= i
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "run env doctor report ctl help" -- "$cur"))
        return
    fi
    case $prev in
        --role) words="server client both" ;;
        --quickack) words="off on" ;;
        --cork-role) words="server client both" ;;
        --quickack-role) words="server client both" ;;
        --nodelay-role) words="server client both" ;;
        --log) words="error info debug" ;;
        --ab-mode) words="connection switchback:SECS" ;;
        --inherit) words="chosen always" ;;
        --format) words="sh systemd docker" ;;
        --config | --log-file | --stats | --stats-prom | --lib | --svg) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --role | --defer-accept | --cork-flush-ms | --quickack | --fastopen | --backlog | --ports | --cork-role | --quickack-role | --nodelay-role | --keepalive | --user-timeout | --syncnt | --congestion | --notsent-lowat | --sndbuf | --rcvbuf | --tos | --mark | --priority | --maxseg | --force | --config | --log | --log-file | --stats | --stats-prom | --ab | --ab-mode | --inherit | --lib | --svg | --format) return ;;
    esac
    if [ -n "$words" ]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return
    fi
    case ${COMP_WORDS[1]} in
        run | env | doctor)
            # The command starts at the first word that is neither a flag nor a flag's value.
            for ((i = 2; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                    --) ((i++)); break ;;
                    --role | --defer-accept | --cork-flush-ms | --quickack | --fastopen | --backlog | --ports | --cork-role | --quickack-role | --nodelay-role | --keepalive | --user-timeout | --syncnt | --congestion | --notsent-lowat | --sndbuf | --rcvbuf | --tos | --mark | --priority | --maxseg | --force | --config | --log | --log-file | --stats | --stats-prom | --ab | --ab-mode | --inherit | --lib | --svg | --format) ((i++)) ;;
                    -*) ;;
                    *) break ;;
                esac
            done
            if [ "$i" -lt "$COMP_CWORD" ] && [ "${COMP_WORDS[1]}" != env ]; then
                declare -F _command_offset >/dev/null && _command_offset "$i"
            elif [[ $cur == -* ]]; then
                case ${COMP_WORDS[1]} in
                    run) words="--role --defer-accept --cork --cork-flush-ms --quickack --fastopen --fastopen-connect --nodelay --backlog --ports --cork-role --quickack-role --nodelay-role --keepalive --user-timeout --syncnt --congestion --notsent-lowat --sndbuf --rcvbuf --tos --mark --priority --maxseg --force --config --log --log-file --stats --stats-prom --ab --ab-mode --ctl --inherit --lib --help" ;;
                    env) words="--role --defer-accept --cork --cork-flush-ms --quickack --fastopen --fastopen-connect --nodelay --backlog --ports --cork-role --quickack-role --nodelay-role --keepalive --user-timeout --syncnt --congestion --notsent-lowat --sndbuf --rcvbuf --tos --mark --priority --maxseg --force --config --log --log-file --stats --stats-prom --ab --ab-mode --ctl --inherit --lib --format --help" ;;
                    doctor) words="--lib --help" ;;
                esac
                COMPREPLY=($(compgen -W "$words" -- "$cur"))
            elif [ "${COMP_WORDS[1]}" != env ]; then
                COMPREPLY=($(compgen -c -- "$cur"))
            fi
            ;;
        report) COMPREPLY=($(compgen -W "--svg --help" -- "$cur")) ;;
        ctl) COMPREPLY=($(compgen -W "--all show set reset --help" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "run env doctor report ctl help" -- "$cur")) ;;
    esac
}
complete -o bashdefault -o default -F _socktune socktune
