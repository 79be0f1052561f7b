"""Review corpora, the bundled sample, and labelled, movie-disjoint datasets."""
