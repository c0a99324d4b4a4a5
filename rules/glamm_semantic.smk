# GLaMM's Semantic_Segm/ sets that need more than a link: pascal_part (converted from the
