"""Pure decisions: plain values in, findings out; no database, files, network or images."""
