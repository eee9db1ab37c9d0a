#!/usr/bin/env bash
# Every threat ID the repository cites must have an entry in docs/THREATS.md.
#
# A citation is, in a tracked *.rs, *.sol, *.sh, *.toml, *.ts, *.mjs or *.md file (docs/THREATS.md
# itself excepted):
#   - an ID as written in comments and docs: FAMILY-NN (two digits);
#   - a test name's suffix: _familyNN in lower case (fn <what>_<outcome>_familyNN());
#   - a shorthand or a range: FAMILY-NN/MM names two IDs, FAMILY-NN..MM and
#     "FAMILY-NN to FAMILY-MM" every ID from NN to MM.
# Only the families below count ("ERC-20" is not an ID). An entry is a list item of
# docs/THREATS.md that starts with the bold ID: "- **FAMILY-NN ...".
#
# Usage: scripts/check-threat-ids.sh          check; exit 1 listing any ID without an entry
#        scripts/check-threat-ids.sh --list   print "ID<TAB>file" for every citation, sorted
set -euo pipefail
cd "$(dirname "$0")/.."

families='AUC|ESC|STK|KPR|TOK|ADM|INV|OFF|KB|PD|MEC|GOV|AFR|PIN|ACC|WEB'
lower=$(tr '[:upper:]' '[:lower:]' <<<"$families")
threats=docs/THREATS.md

mode=check
case "${1:-}" in
    "") ;;
    --list) mode=list ;;
    *)
        echo "usage: $0 [--list]" >&2
        exit 2
        ;;
esac

# The IDs one file cites, one a line.
ids_in() {
    local f=$1
    # FAMILY-NN as written.
    grep -ohE "\\b($families)-[0-9]{2}\\b" "$f" || true
    # Test names: _familyNN (a space before each underscore lets \b end each one).
    sed 's/_/ _/g' "$f" | grep -ohE "_($lower)[0-9]{2}\\b" | sed 's/^_//' |
        sed -E 's/^([a-z]+)([0-9]{2})$/\1-\2/' | tr '[:lower:]' '[:upper:]' || true
    # Shorthands and ranges: FAMILY-NN/MM, FAMILY-NN..MM, FAMILY-NN to FAMILY-MM.
    grep -ohE "\\b($families)-[0-9]{2}(/|\\.\\.| to ($families)-)[0-9]{2}\\b" "$f" |
        while IFS= read -r m; do
            local fam=${m%%-*} a b i
            a=$((10#$(sed -E 's/^[A-Z]+-([0-9]{2}).*/\1/' <<<"$m")))
            b=$((10#$(sed -E 's/.*([0-9]{2})$/\1/' <<<"$m")))
            if [[ $m == */* ]]; then
                printf '%s-%02d\n%s-%02d\n' "$fam" "$a" "$fam" "$b"
            elif [[ $m != *" to "* || ${m##* to } == "$fam"-* ]]; then
                for ((i = a; i <= b; i++)); do printf '%s-%02d\n' "$fam" "$i"; done
            fi
        done || true
}

cited=$(mktemp)
trap 'rm -f "$cited"' EXIT
git ls-files -- '*.rs' '*.sol' '*.sh' '*.toml' '*.ts' '*.mjs' '*.md' | grep -vxF "$threats" |
    while IFS= read -r f; do
        [[ -f $f ]] || continue
        ids_in "$f" | sed "s|\$|	$f|"
    done | sort -u >"$cited"

if [[ $mode == list ]]; then
    cat "$cited"
    exit 0
fi

if [[ ! -f $threats ]]; then
    echo "check-threat-ids: $threats is missing" >&2
    exit 1
fi
entries=$({ grep -oE "^- \\*\\*($families)-[0-9]{2}\\b" "$threats" || true; } | sed 's/^- \*\*//' | sort -u)

missing=$(cut -f1 "$cited" | sort -u | comm -23 - <(printf '%s\n' "$entries"))
count=$(cut -f1 "$cited" | sort -u | wc -l | tr -d ' ')

if [[ -n $missing ]]; then
    echo "threat IDs cited but not in $threats (add an entry, or fix the citation):" >&2
    while IFS= read -r id; do
        printf '  %s  in %s\n' "$id" "$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$cited" |
            paste -sd, - | sed 's/,/, /g')" >&2
    done <<<"$missing"
    exit 1
fi
echo "threat IDs: $count cited, all in $threats"
