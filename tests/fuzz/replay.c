/* A main() for the fuzz target without libFuzzer, so that every compiler
 * and every sanitizer build runs it under ctest (`resp_fuzz_replay`):
 *
 *   resp_fuzz_replay [FILE|DIR]...   run the target on each file (the seed
 *                                    corpus, or crash inputs to reproduce)
 *
 * then on $RESP_FUZZ_ITERATIONS (default 200000) inputs made by mutating the
 * seeds with a fixed pseudo-random sequence: splicing in protocol fragments
 * (headers, CRLFs, quotes, huge and negative lengths), flipping, inserting
 * and deleting bytes.  Deterministic: a failure repeats.  The real fuzzing,
 * coverage-guided, is libFuzzer's (tests/fuzz/run.sh).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 4096
#define MAX_SEEDS 256

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS], nseeds;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(INPUT_MAX);
	size_t n = buf ? fread(buf, 1, INPUT_MAX, f) : 0;
	fclose(f);
	if (!buf)
		return -1;
	LLVMFuzzerTestOneInput(buf, n);
	if (nseeds < MAX_SEEDS) {
		seeds[nseeds] = buf;
		seed_len[nseeds++] = n;
	} else {
		free(buf);
	}
	return 0;
}

static int run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char full[4096];
		snprintf(full, sizeof full, "%s/%s", path, e->d_name);
		rc |= run_file(full);
	}
	closedir(d);
	return rc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const fragments[] = {
	"\r\n",       "\r",          "\n",
	"*",          "$",           "*1\r\n",
	"*3\r\n",     "*-1\r\n",     "*0\r\n",
	"$0\r\n\r\n", "$-1\r\n",     "$5\r\nhello\r\n",
	"$64\r\n",    "$65\r\n",     "$99999999999999999999\r\n",
	"*17\r\n",    "*16\r\n",     "+OK\r\n",
	"-ERR\r\n",   ":-42\r\n",    "\"",
	"'",          "\\",          "\\x4",
	"\\x41",      " ",           "\t",
	"PING",       "SET k v\r\n", "0",
	"-",          "00",          "*1\r\n$4\r\nPING\r\n",
};

static size_t mutate(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t len = n < INPUT_MAX ? n : INPUT_MAX;
	memcpy(out, in, len);
	int rounds = 1 + (int)(next() % 8);
	for (int r = 0; r < rounds; r++) {
		size_t at = len ? next() % (len + 1) : 0;
		switch (next() % 5) {
		case 0: /* splice a fragment in */
		{
			const char *fr =
				fragments[next() % (sizeof fragments / sizeof fragments[0])];
			size_t fl = strlen(fr);
			if (len + fl > INPUT_MAX)
				break;
			memmove(out + at + fl, out + at, len - at);
			memcpy(out + at, fr, fl);
			len += fl;
			break;
		}
		case 1: /* flip a byte */
			if (at < len)
				out[at] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 2: /* a random byte */
			if (at < len)
				out[at] = (uint8_t)next();
			break;
		case 3: /* delete a run */
		{
			size_t k = next() % 8;
			if (at + k <= len) {
				memmove(out + at, out + at + k, len - at - k);
				len -= k;
			}
			break;
		}
		default: /* append another seed */
			if (nseeds) {
				size_t s = next() % nseeds, k = seed_len[s];
				if (len + k <= INPUT_MAX) {
					memcpy(out + len, seeds[s], k);
					len += k;
				}
			}
			break;
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i]) < 0)
			return 1;
	const char *env = getenv("RESP_FUZZ_ITERATIONS");
	long iterations = env ? atol(env) : 200000;
	static uint8_t buf[INPUT_MAX];
	static const uint8_t empty[1];
	for (long i = 0; i < iterations; i++) {
		size_t s = nseeds ? next() % nseeds : 0;
		size_t n = mutate(buf, nseeds ? seeds[s] : empty, nseeds ? seed_len[s] : 0);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("resp_fuzz_replay: %zu file(s), %ld mutated inputs: ok\n", nseeds, iterations);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i]);
	return 0;
}
