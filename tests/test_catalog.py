"""The backbone catalog's own helpers (tlcore.models.catalog)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


def test_group_param_counts_are_the_models_and_leave_the_random_state_alone():
    """Pages 2 and 3 count parameters per group on a random copy: the counts are the built
    model's, and counting does not move a seeded run's random numbers."""
    from tlcore.models import catalog

    name = catalog.offline_default()
    catalog.group_param_counts.cache_clear()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    counts = catalog.group_param_counts(name)
    assert torch.equal(torch.rand(3), expected)
    spec = catalog.backbone(name)
    built = catalog.build_model(name, 10, pretrained=False, image_size=spec.default_size).param_counts()
    assert counts == built and list(counts)[-1] == "head"
