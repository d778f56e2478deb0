"""The operator's view (docs/reports.md): facts read from the journal, the report and
its irregularities, OCPI-independent exports for fleets."""
