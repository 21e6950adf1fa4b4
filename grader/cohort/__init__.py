"""What a cohort of submissions shares: fingerprints of each one's code, and how much of it two submissions share."""
