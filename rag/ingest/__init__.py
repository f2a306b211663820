"""Files in, validated raw records and merged papers out: the first layer of a question's data."""
