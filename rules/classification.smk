# COSMOS classification sets (cosmos/classification/<folder torchvision opens>).
