"""From a card to a decision: the readers' events in one queue (`intake`), what a tap
means (`taps`), the authorisation of a token (`auth`: local list, cache, backend,
offline policy) and tokens accepted offline asked about again (`recheck`)."""
