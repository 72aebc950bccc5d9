"""What the simulator plays: the kinds of cheating, the anomaly each is meant to raise, and the record of an upload."""

from __future__ import annotations

from dataclasses import dataclass, field

FAR_FIX_COOLDOWN_S = 300.0  # 8 km at the 250 km/h plausibility limit takes 115 s: wait longer before the next fix
PROXIES_PER_CLASS_PER_DAY = 2

# Scenario -> the anomaly it is meant to raise. Other rules may join in on a cheat (an out-of-fence fix right
# after one at the venue is also GPS_IMPLAUSIBLE); a genuine upload must raise nothing.
INTENDED = {
    "wrong_face": "FACE_MISMATCH", "group": "FACE_MULTIPLE", "no_face": "FACE_MISSING",
    "out_of_fence": "OUT_OF_FENCE", "mock_gps": "GPS_IMPLAUSIBLE", "replay": "PHOTO_REPLAY",
    "proxy": "PROXY_SIGNIN", "headcount_gap": "HEADCOUNT_GAP",
}
# The first two minutes at the default interval (one entry per round; every fifth round is a snapshot).
OPENING = ["genuine", "genuine", "wrong_face", "genuine", "snapshot",
           "group", "genuine", "no_face", "mock_gps", "headcount_gap",
           "out_of_fence", "replay", "proxy", "genuine", "snapshot",
           "genuine", "genuine", "genuine", "genuine", "snapshot"]
CHEAT_WEIGHTS = {"genuine": 0.80, "wrong_face": 0.04, "out_of_fence": 0.04, "mock_gps": 0.03, "group": 0.02,
                 "no_face": 0.02, "replay": 0.025, "proxy": 0.025}


@dataclass
class Upload:
    """One upload the simulator made: what it meant, what it got back."""
    round: int
    what: str  # checkin | snapshot
    scenario: str
    class_id: int
    trainee_id: int | None
    status_code: int
    status: str = ""
    codes: list[str] = field(default_factory=list)
    status_url: str = ""
    message: str = ""

    @property
    def genuine(self) -> bool:
        return self.scenario in ("genuine", "snapshot")

    @property
    def intended(self) -> str | None:
        return INTENDED.get(self.scenario)
