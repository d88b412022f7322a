#!/bin/sh
# scripts/check_layers.sh - the dependency rule (docs/architecture.md), checked on every
# `#include "..."` line of the C sources; `make test` runs it beside the test binaries.
#
# Two checks, each one line of the summary "N passed, M failed":
#   layers: a file includes headers of its own module and of modules on LOWER layers only;
#   cycles: no include circle between units, where a unit is a .c file, its .h and a private
#           NAME_internal.h beside them (core/tensor.c + core/tensor.h are one unit).
# A folder that the table below does not list is an error: place it before it is used.

# The layer order, lowest first: this table is the one place that defines it.
LAYERS='
0 core
1 nn optim data score dist
2 translate
3 train
4 cli
5 tests bench
'

cd "$(dirname "$0")/.." || exit 2

# "path:line:text" for every quoted include of every C file outside the build directories.
find . \( -name 'build*' -o -name '.git' \) -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print |
    sed 's#^\./##' | LC_ALL=C sort |
    while read -r f; do
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed "s#^#$f:#"
        echo "$f:0:" # files without includes are units too
    done |
    awk -v layers="$LAYERS" '
function module(path) { return index(path, "/") ? substr(path, 1, index(path, "/") - 1) : "." }
function unit(path,    u) {
    u = path
    sub(/\.[ch]$/, "", u)
    if (path ~ /_internal\.h$/) sub(/_internal$/, "", u)
    return u
}
function file_exists(p,    line, r) {
    if (p in exists) return exists[p]
    r = (getline line < p) >= 0
    close(p)
    exists[p] = r
    return r
}
function dfs(u,    i, v, k, path) {
    color[u] = 1
    stack[++depth] = u
    for (i = 1; i <= n_adj[u]; i++) {
        v = adj[u, i]
        if (color[v] == 1) {
            path = ""
            for (k = depth; k >= 1 && stack[k] != v; k--) ;
            for (; k <= depth; k++) path = path stack[k] " (" witness[stack[k], k < depth ? stack[k + 1] : v] ") -> "
            print "check_layers: include cycle: " path v
            n_cycles++
        } else if (color[v] == 0) {
            dfs(v)
        }
    }
    depth--
    color[u] = 2
}
BEGIN {
    n = split(layers, lines, "\n")
    for (i = 1; i <= n; i++) {
        m = split(lines[i], w, " ")
        for (j = 2; j <= m; j++) rank[w[j]] = w[1] + 0
    }
}
{
    # path:line:text (a path holds no colon)
    first = index($0, ":"); f = substr($0, 1, first - 1); rest = substr($0, first + 1)
    second = index(rest, ":"); lineno = substr(rest, 1, second - 1); text = substr(rest, second + 1)
    u = unit(f)
    if (!(u in seen_unit)) { seen_unit[u] = 1; units[++n_units] = u }
    if (!(f in seen_file)) { seen_file[f] = 1; n_files++ }
    mf = module(f)
    if (!(mf in rank) && !(mf in unknown)) {
        unknown[mf] = 1
        print "check_layers: " f ": folder \"" mf "\" is not in the layer table of scripts/check_layers.sh"
        n_layer_errors++
    }
    if (text == "") next
    inc = text
    sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
    target = inc
    if (!file_exists(target)) {
        dir = f; sub(/[^\/]*$/, "", dir)
        target = dir inc
        if (!file_exists(target)) {
            print "check_layers: " f ":" lineno ": cannot find \"" inc "\" (includes are relative to the repository root)"
            n_layer_errors++
            next
        }
    }
    n_includes++
    mt = module(target)
    if (mf in rank && mt in rank && mt != mf && rank[mt] >= rank[mf]) {
        print "check_layers: " f ":" lineno ": " mf "/ (layer " rank[mf] ") includes " target " (" mt "/, layer " rank[mt] "): arrows point down only"
        n_layer_errors++
    }
    v = unit(target)
    if (v != u && !((u, v) in has_edge)) {
        has_edge[u, v] = 1
        adj[u, ++n_adj[u]] = v
        witness[u, v] = f ":" lineno
    }
}
END {
    for (i = 1; i <= n_units; i++) if (color[units[i]] == 0) dfs(units[i])
    printf "check_layers: %d files, %d units, %d includes: %d upward or unplaced, %d cycles\n", n_files, n_units, n_includes, n_layer_errors, n_cycles
    passed = (n_layer_errors == 0) + (n_cycles == 0)
    printf "%d passed, %d failed\n", passed, 2 - passed
    exit passed == 2 ? 0 : 1
}'
