"""Everything that knows about JobSpy: scraping a site, the bundled sample, normalising rows."""
