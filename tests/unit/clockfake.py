"""A clock the test moves by hand."""

from datetime import UTC, datetime, timedelta


class FakeClock:
    speed = 1.0

    def __init__(self, start: datetime | None = None) -> None:
        self.t_s = 0.0
        self.start = start or datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t_s)

    def monotonic_s(self) -> float:
        return self.t_s

    def advance(self, seconds: float) -> None:
        self.t_s += seconds

    async def sleep(self, seconds: float) -> None:
        self.t_s += seconds
