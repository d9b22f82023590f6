/* main.c — the tlcl command line: dispatches to one file per command. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tlcl <command> [options]\n"
            "commands:\n"
            "  devices [--json]        list every OpenCL device of every platform\n"
            "  summary ARCH [--classes N] [--no-top] [--size S] [--json]\n"
            "                          layer table and parameter totals of an architecture\n"
            "  train [--device=N] [--epochs=N] [--batch-size=N] [--no-test] [--resume | --fresh] "
            "[--set k=v]... CONFIG\n"
            "                          run the fine-tuning workflow of a YAML configuration\n"
            "  grid [--device=N] [--dry-run] [--set k=v]... CONFIG\n"
            "                          train every run of the configuration's grid: section, rank them,\n"
            "                          keep the best model (rerun: finished runs are skipped)\n"
            "  test --model CKPT --data DIR [--out DIR] [--device=N] [--batch-size=N]\n"
            "                          confusion matrix and classification report of a checkpoint\n"
            "  bench [--device=N | --all] [--arch=A] [--batch=B] [--size=S] [--mode=train|infer|head]\n"
            "        [--steps=N] [--warmup=N] [--json=FILE] [--profile] [--no-peaks] [--cold] [--out=DIR]\n"
            "                          time EfficientNet steps: img/s, start-up, per-layer profile,\n"
            "                          GEMM and copy peaks; --all compares every device\n"
            "  import --from keras FILE --arch ARCH [--classes N] [--size S] [--no-top] -o OUT.safetensors\n"
            "                          Keras weights (.weights.h5, .keras, legacy .h5) to a tlcl checkpoint\n"
            "  config check FILE [--set key.path=value]...\n"
            "                          validate a training configuration, print the effective one\n"
            "  config default          print the commented default configuration\n"
            "  predict --model CKPT [--top K] [--out FILE] IMAGE|DIR...\n"
            "                          classify images; CSV file,class_1,prob_1,... (directories\n"
            "                          are searched for .jpg .jpeg .png .bmp .gif)\n"
            "  track sync [--uri=URL] [--timeout=S] RUN_DIR\n"
            "                          upload the MLflow records a run kept in RUN_DIR/tracking\n"
            "                          (server unreachable during training); each goes once\n"
            "options common to device commands:\n"
            "  --device=N              device index from `tlcl devices` (or TLCL_DEVICE=N);\n"
            "                          default: the first GPU, else the first device\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "devices") == 0)
        return cmd_devices(argc - 1, argv + 1);
    if (strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "grid") == 0)
        return cmd_grid(argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(argv[1], "summary") == 0)
        return cmd_summary(argc - 1, argv + 1);
    if (strcmp(argv[1], "track") == 0)
        return cmd_track(argc - 1, argv + 1);
    if (strcmp(argv[1], "predict") == 0)
        return cmd_predict(argc - 1, argv + 1);
    fprintf(stderr, "tlcl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
