/* What one photo's JPEG decoding costs in libjpeg-turbo, by what is asked of it: a decode at 1/8,
 * 1/4 and 1/2 scale (the 1/8 one is almost only Huffman decoding: one DC value per block), and
 * jpeg_read_coefficients (Huffman decoding plus keeping every block's coefficients: what "one
 * entropy decode for both the detector's view and the face's region" would start from).
 * Per photo, milliseconds, the best of REPEATS passes over every file, as one JSON object.
 *
 *   cc -O2 benchmarks/jpeg_floor.c -o jpeg_floor -ljpeg && ./jpeg_floor PHOTO.jpg...
 * (needs libjpeg-turbo's headers: Debian libjpeg62-turbo-dev; bench_jpeg_floor.py runs it.) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <jpeglib.h>

#define REPEATS 3

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static unsigned char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END); *n = ftell(f); rewind(f);
    unsigned char *b = malloc(*n);
    if (fread(b, 1, *n, f) != (size_t)*n) { perror(path); exit(2); }
    fclose(f);
    return b;
}

static void start(struct jpeg_decompress_struct *c, struct jpeg_error_mgr *e, unsigned char *b, long n) {
    c->err = jpeg_std_error(e);
    jpeg_create_decompress(c);
    jpeg_mem_src(c, b, n);
    jpeg_read_header(c, TRUE);
}

/* denom 0: the coefficients only */
static void decode(unsigned char *b, long n, int denom) {
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr e;
    start(&c, &e, b, n);
    if (denom == 0) {
        jvirt_barray_ptr *v = jpeg_read_coefficients(&c);
        for (int ci = 0; ci < c.num_components; ci++)  /* each row of blocks handed out once */
            for (JDIMENSION r = 0; r < c.comp_info[ci].height_in_blocks; r++)
                (*c.mem->access_virt_barray)((j_common_ptr)&c, v[ci], r, 1, FALSE);
    } else {
        c.scale_num = 1;
        c.scale_denom = denom;
        c.out_color_space = JCS_RGB;
        jpeg_start_decompress(&c);
        unsigned char *row = malloc(c.output_width * 3);
        while (c.output_scanline < c.output_height)
            jpeg_read_scanlines(&c, &row, 1);
        free(row);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
}

int main(int argc, char **argv) {
    int n = argc - 1;
    if (n < 1) { fprintf(stderr, "usage: jpeg_floor PHOTO.jpg...\n"); return 2; }
    unsigned char **data = malloc(n * sizeof *data);
    long *size = malloc(n * sizeof *size);
    for (int i = 0; i < n; i++) data[i] = slurp(argv[i + 1], &size[i]);
    const int denoms[] = {8, 4, 2, 1, 0};
    const char *names[] = {"decode_1_8", "decode_1_4", "decode_1_2", "decode_whole", "read_coefficients"};
    printf("{\"photos\": %d", n);
    for (int k = 0; k < 5; k++) {
        double best = 1e30;
        for (int r = 0; r < REPEATS; r++) {
            double t = now();
            for (int i = 0; i < n; i++) decode(data[i], size[i], denoms[k]);
            if (now() - t < best) best = now() - t;
        }
        printf(", \"%s_ms\": %.2f", names[k], 1000 * best / n);
    }
    printf("}\n");
    return 0;
}
