#!/usr/bin/env bash
# The telephony recipe: prepare -> run -> export.  recipes/telephony/run.sh [--stage N] [--stop-stage N] [key=value ...]
exec "$(dirname "$0")/../run.sh" telephony "$@"
