#!/usr/bin/env bash
# The aviation recipe: prepare -> run -> export.  recipes/aviation/run.sh [--stage N] [--stop-stage N] [key=value ...]
exec "$(dirname "$0")/../run.sh" aviation "$@"
