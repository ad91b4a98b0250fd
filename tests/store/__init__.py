"""Tests for moa.store (a package so module names cannot clash with other test dirs)."""
