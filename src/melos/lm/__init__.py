"""Music-language model: a melos encoder connected to a causal LM (`melos lm`).

    from melos.lm import load_model, load_recipe, train
    model_dir = train(load_recipe("recipes/lm-toy.yaml", ["encoder=mert-tiny", "lm=toy-lm"]), "runs/lm")
    model, tokenizer = load_model(model_dir)  # trained weights only; the LM is read from its folder
"""

from .audio_features import AudioFeaturizer, Clip
from .checkpoint import export_merged, load_trained
from .model import MusicLM, MusicLMConfig
from .muchomusic import Question, read_questions, score
from .report import evaluate_model, load_model
from .training import LMRecipe, load_recipe, train

__all__ = ["AudioFeaturizer", "Clip", "LMRecipe", "MusicLM", "MusicLMConfig", "Question", "evaluate_model",
           "export_merged", "load_model", "load_trained", "load_recipe", "read_questions", "score", "train"]
