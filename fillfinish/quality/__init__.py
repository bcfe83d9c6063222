"""After the fill: viable monitoring results, media-fill outcomes, retained samples, 8D deviations, QA release or
rejection, retention, legal hold, purge, backup and restore (docs/quality.md, decision 0010)."""
