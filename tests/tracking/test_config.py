"""comotion.tracking.config: the tracker config a results header records."""

import pytest

from comotion.errors import InputError
from comotion.tracking.config import TrackerConfig


def test_recorded_config_is_read_back_and_defaults_without_one():
    tuned = TrackerConfig(init_conf_thr=0.8, snap_to_detections=True)
    assert TrackerConfig.recorded_in({"config": tuned.to_dict()}) == tuned
    assert TrackerConfig.recorded_in({}) == TrackerConfig()
    assert TrackerConfig.recorded_in({"config": None}) == TrackerConfig()
    with pytest.raises(InputError, match="ema_coef"):
        TrackerConfig.recorded_in({"config": {"ema_coef": 1.5}})
