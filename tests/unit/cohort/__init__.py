"""Tests of the cohort's similarity engine: `grader/cohort/`."""
