"""`jobjournal web`: a read-only web view of the jobs, its JSON API and Prometheus metrics."""
