# COSMOS segmentation benchmarks (cosmos/mmseg/, the tree of mmseg data/).
