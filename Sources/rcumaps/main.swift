print("rcumaps")
