"""One module per wire protocol; ``registry`` maps model ids to them."""
