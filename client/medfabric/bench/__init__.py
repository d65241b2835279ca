"""Benchmarks from the client's side: the EMR load test and the report of Caliper runs."""
