"""Report helpers: the layer curve takes, per layer, the lr chosen on validation."""

from melos.evaluation.report import layer_curve


def test_layer_curve_uses_validation_to_pick_the_lr():
    run = {"primary": "accuracy", "grid": [
        {"layer": 0, "lr": 1e-3, "valid": 0.5, "test": {"accuracy": 0.9}},
        {"layer": 0, "lr": 1e-2, "valid": 0.6, "test": {"accuracy": 0.4}},
        {"layer": 1, "lr": 1e-3, "valid": 0.7, "test": {"accuracy": 0.7}},
        {"layer": "weighted", "lr": 1e-3, "valid": 0.9, "test": {"accuracy": 0.95}},
    ]}
    assert layer_curve(run) == ([0, 1], [0.4, 0.7])
