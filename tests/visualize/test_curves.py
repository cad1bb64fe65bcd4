import json

import numpy as np
import pytest
from matplotlib.image import imread

from attnlab.visualize.curves import plot_curves, primary_metric, read_metrics, write_curves

RECORDS = [
    {"step": 20, "epoch": 1.0, "train_loss": 2.5, "lr": 1e-3, "seconds": 1.0, "val_loss": 2.4,
     "token_acc": 0.1, "seq_acc": 0.0},
    {"step": 40, "epoch": 2.0, "train_loss": 1.5, "lr": 1e-3, "seconds": 2.0, "val_loss": 1.7,
     "token_acc": 0.5, "seq_acc": 0.25},
    {"step": 60, "epoch": 3.0, "train_loss": 0.5, "lr": 1e-3, "seconds": 3.0, "val_loss": 0.6,
     "token_acc": 0.9, "seq_acc": 0.75},
]


def write_jsonl(path, records, extra=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + extra)
    return path


def test_curves_png_from_a_hand_written_metrics_file(tmp_path):
    write_jsonl(tmp_path / "metrics.jsonl", RECORDS)
    path = write_curves(tmp_path)
    assert path == tmp_path / "curves.png"
    image = imread(path)
    assert image.shape[:2] == (400, 1000)  # 10 x 4 inches at 100 dpi
    assert image[..., :3].std() > 0.05  # not blank


def test_the_panels_hold_the_recorded_values():
    fig = plot_curves(RECORDS)
    loss_ax, metric_ax = fig.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    np.testing.assert_array_equal(lines["train (running mean)"].get_xdata(), [20, 40, 60])
    np.testing.assert_array_equal(lines["train (running mean)"].get_ydata(), [2.5, 1.5, 0.5])
    np.testing.assert_array_equal(lines["held-out"].get_ydata(), [2.4, 1.7, 0.6])
    (metric_line,) = metric_ax.get_lines()
    np.testing.assert_array_equal(metric_line.get_ydata(), [0.0, 0.25, 0.75])  # seq_acc
    assert metric_ax.get_title() == "held-out seq_acc (higher is better)"
    assert loss_ax.get_xlabel() == metric_ax.get_xlabel() == "optimiser step"


def test_records_are_plotted_in_step_order():
    fig = plot_curves(list(reversed(RECORDS)))
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [20, 40, 60])


def test_a_named_metric_and_the_lm_metric():
    fig = plot_curves(RECORDS, metric="token_acc")
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_ydata(), [0.1, 0.5, 0.9])
    lm = [{"step": 5, "train_loss": 3.0, "val_loss": 3.1, "bits_per_char": 4.4}]
    assert primary_metric(lm) == "bits_per_char"
    assert plot_curves(lm).axes[1].get_title() == "held-out bits_per_char (lower is better)"


def test_unknown_metric_names_the_ones_found():
    with pytest.raises(ValueError, match=r"metric 'bleu' is in no record; metrics found: "
                                         r"\['seq_acc', 'token_acc'\]"):
        plot_curves(RECORDS, metric="bleu")


def test_read_metrics_skips_blank_lines_and_reports_bad_ones(tmp_path):
    path = write_jsonl(tmp_path / "metrics.jsonl", RECORDS, extra="\n")
    assert read_metrics(path) == RECORDS
    write_jsonl(path, RECORDS, extra="{not json\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:4 is not valid JSON"):
        read_metrics(path)
    path.write_text('{"loss": 1}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:1 must be a JSON object with a "
                                         r"numeric 'step'"):
        read_metrics(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="holds no evaluation yet"):
        read_metrics(path)


def test_missing_file_and_no_overwrite(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        write_curves(tmp_path)
    write_jsonl(tmp_path / "metrics.jsonl", RECORDS)
    write_curves(tmp_path)
    with pytest.raises(FileExistsError, match="curves.png already exists"):
        write_curves(tmp_path)
    write_curves(tmp_path, force=True)
