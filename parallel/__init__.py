"""parallel: the Ray Data machinery shared by the index's and the translator's Ray engines."""
