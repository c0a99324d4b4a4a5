# GLaMM's --dataset_dir (glamm/) and the folders it opens from its working directory.
