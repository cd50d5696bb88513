#!/usr/bin/env bash
# The legal recipe: prepare -> run -> export.  recipes/legal/run.sh [--stage N] [--stop-stage N] [key=value ...]
exec "$(dirname "$0")/../run.sh" legal "$@"
