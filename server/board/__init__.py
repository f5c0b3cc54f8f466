"""The wall board of the monitoring center: masking, the board's view model, versions and render cache."""
