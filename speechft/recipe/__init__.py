"""The recipe runner (`speechft run`): runner.py puts the stages in order; runs.py is the run
folder, data.py the data stage, evaluation.py the evaluation stage."""

from .data import load_sets, training_utterances
from .runner import run_recipe
from .runs import INCOMPLETE_MARKER, choose_run_dir, unfinished_runs

__all__ = ["INCOMPLETE_MARKER", "choose_run_dir", "load_sets", "run_recipe", "training_utterances", "unfinished_runs"]
