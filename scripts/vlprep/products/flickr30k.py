"""Flickr30k for COSMOS's retrieval evaluation: cosmos/flickr30k-images/, the images and
BLIP's Karpathy-split JSONs inside the same folder, as COSMOS's read_flickr_pairs reads them."""

from vlprep.products.base import Family, Product, Samples

FAMILY = Family(
    products=[
        Product(
            "flickr30k",
            bundles=("cosmos",),
            files=("{cosmos}/flickr30k-images",),
            entries=("flickr30k_images", "flickr30k_val_json", "flickr30k_test_json"),
            checks=("cosmos",),
            # COSMOS's retrieval evaluation opens COCO and Flickr30k together (data.py:927-930)
            in_all=True,
            about="cosmos/flickr30k-images (COSMOS retrieval eval)",
            # read_flickr_pairs: each record's image joined onto the folder's parent
            samples=Samples(
                "annotations", "{cosmos}/flickr30k-images/flickr30k_val.json", images="{cosmos}"
            ),
        )
    ],
    image_checks={"flickr30k_images": ("extracted", "flickr30k_images", "flickr30k-images")},
)
