"""summary() on residual CNNs: blocks are marked with their shortcut kind, totals still add up."""

from torch import nn

from gconv.models import CNN
from gconv.summary import summary


def test_summary_marks_residual_blocks_and_their_shortcuts():
    model = CNN(in_shape=(1, 8, 8), channels=(4, 4, 8), residual=True, head="gap", pool=None)
    result = summary(model, (1, 8, 8), print_table=False)
    notes = {row.name: row.note for row in result.rows if row.note}
    assert notes == {
        "features.0.block": "residual, projection shortcut",  # 1 -> 4 channels
        "features.1.block": "residual, identity shortcut",
        "features.2.block": "residual, projection shortcut",  # 4 -> 8
    }
    text = str(result)
    assert "features.1.block (BasicBlock, residual, identity shortcut)" in text
    assert sum(row.num_params for row in result.rows) == result.total_params
    # deeper listing: the shortcut's 1x1 projection has its own row
    deep = summary(model, (1, 8, 8), depth=5, print_table=False)
    rows = {row.name: row for row in deep.rows}
    assert rows["features.0.block.shortcut.0"].type == "Conv2d"
    assert rows["features.0.block.shortcut.0"].num_params == 4 * 1 + 4
    assert all(row.note == "" for row in summary(nn.Linear(2, 2), (2,), print_table=False).rows)
