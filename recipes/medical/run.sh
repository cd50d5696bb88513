#!/usr/bin/env bash
# The medical recipe: prepare -> run -> export.  recipes/medical/run.sh [--stage N] [--stop-stage N] [key=value ...]
exec "$(dirname "$0")/../run.sh" medical "$@"
