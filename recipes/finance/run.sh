#!/usr/bin/env bash
# The finance recipe: prepare -> run -> export.  recipes/finance/run.sh [--stage N] [--stop-stage N] [key=value ...]
exec "$(dirname "$0")/../run.sh" finance "$@"
