// Go side of Edo's benchmark suite: the task and channel workloads (see
// bench/README.md for the exact definition of each; every implementation does
// the same work). Goroutines stand for tasks, channels for Tokio's channels,
// a sync.WaitGroup for awaiting join handles.
//
// usage: go_bench <workload> <threads>
//
//	threads 0 = GOMAXPROCS(1) (Go's nearest to a current-thread runtime),
//	N = GOMAXPROCS(N).
//
// Prints `bench=<name> impl=go threads=<n> value=<v> unit=<u>` and exits 77
// for a workload it does not implement.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	spawnMany       = 1_000_000
	remoteRounds    = 20
	remotePerThread = 12_800
	yieldTasks      = 1_000
	yields          = 1_000
	pingPongIters   = 100
	pingPongPairs   = 1_000
	chainDepth      = 1_000
	chainIters      = 100
	mpscMsgs        = 10_000_000
	mpscCap         = 1_024
	mpscProducers   = 8
	reqReply        = 1_000_000
	idleTasks       = 1_000_000
)

func report(name string, threads int, value float64, unit string) {
	fmt.Printf("bench=%s impl=go threads=%d value=%.2f unit=%s\n", name, threads, value, unit)
}

func nsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }

// inTask runs f in a goroutine, as the other implementations run the
// workload inside a spawned task, and returns its result.
func inTask[T any](f func() T) T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return <-ch
}

func benchSpawnMany() float64 {
	d := inTask(func() time.Duration {
		t := time.Now()
		var wg sync.WaitGroup
		wg.Add(spawnMany)
		for i := 0; i < spawnMany; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		return time.Since(t)
	})
	return nsPer(d, spawnMany)
}

// Two OS threads (goroutines locked to their threads) spawn 12,800 goroutines
// each; only the spawning phase is timed.
func benchSpawnRemote() float64 {
	var total time.Duration
	for r := 0; r < remoteRounds; r++ {
		var ready, start, spawned, all sync.WaitGroup
		ready.Add(2)
		start.Add(1)
		spawned.Add(2)
		all.Add(2 * remotePerThread)
		for s := 0; s < 2; s++ {
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				ready.Done()
				start.Wait()
				for i := 0; i < remotePerThread; i++ {
					go func() { all.Done() }()
				}
				spawned.Done()
			}()
		}
		ready.Wait()
		t := time.Now()
		start.Done()
		spawned.Wait()
		total += time.Since(t)
		all.Wait()
	}
	return nsPer(total, remoteRounds*2*remotePerThread)
}

func benchYieldMany() float64 {
	d := inTask(func() time.Duration {
		t := time.Now()
		var wg sync.WaitGroup
		wg.Add(yieldTasks)
		for i := 0; i < yieldTasks; i++ {
			go func() {
				for j := 0; j < yields; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return time.Since(t)
	})
	return nsPer(d, yieldTasks*yields)
}

func benchPingPong() float64 {
	d := inTask(func() time.Duration {
		t := time.Now()
		for it := 0; it < pingPongIters; it++ {
			var wg sync.WaitGroup
			wg.Add(pingPongPairs)
			for i := 0; i < pingPongPairs; i++ {
				go func() {
					// Buffered channels of one stand for oneshots.
					c1, c2 := make(chan struct{}, 1), make(chan struct{}, 1)
					go func() {
						<-c1
						c2 <- struct{}{}
					}()
					c1 <- struct{}{}
					<-c2
					wg.Done()
				}()
			}
			wg.Wait()
		}
		return time.Since(t)
	})
	return nsPer(d, pingPongIters*pingPongPairs)
}

func chain(n int, done chan struct{}) {
	if n == 0 {
		done <- struct{}{}
	} else {
		go chain(n-1, done)
	}
}

func benchChainedSpawn() float64 {
	d := inTask(func() time.Duration {
		t := time.Now()
		for it := 0; it < chainIters; it++ {
			done := make(chan struct{}, 1)
			chain(chainDepth, done)
			<-done
		}
		return time.Since(t)
	})
	return nsPer(d, chainIters*chainDepth)
}

func benchMpsc(producers int) float64 {
	d := inTask(func() time.Duration {
		t := time.Now()
		ch := make(chan uint64, mpscCap)
		per := uint64(mpscMsgs / producers)
		var wg sync.WaitGroup
		wg.Add(producers)
		for p := 0; p < producers; p++ {
			go func() {
				for i := uint64(0); i < per; i++ {
					ch <- i
				}
				wg.Done()
			}()
		}
		go func() { wg.Wait(); close(ch) }()
		var n, sum uint64
		for v := range ch {
			sum += v
			n++
		}
		if n != mpscMsgs || sum != uint64(producers)*(per*(per-1)/2) {
			panic("mpsc: lost messages")
		}
		return time.Since(t)
	})
	return mpscMsgs / d.Seconds()
}

func benchRequestReply() float64 {
	d := inTask(func() time.Duration {
		reqs := make(chan chan struct{}, 10)
		served := make(chan struct{})
		go func() {
			for reply := range reqs {
				reply <- struct{}{}
			}
			close(served)
		}()
		t := time.Now()
		for i := 0; i < reqReply; i++ {
			reply := make(chan struct{}, 1)
			reqs <- reply
			<-reply
		}
		d := time.Since(t)
		close(reqs)
		<-served
		return d
	})
	return nsPer(d, reqReply)
}

func rssPages() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	var size, rss float64
	fmt.Sscan(string(b), &size, &rss)
	return rss * float64(os.Getpagesize())
}

func peakRSS() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) * 1024
}

func benchIdleTasks() float64 {
	base := rssPages()
	return inTask(func() float64 {
		var parked, finished sync.WaitGroup
		parked.Add(idleTasks)
		finished.Add(idleTasks)
		senders := make([]chan struct{}, idleTasks)
		for i := range senders {
			ch := make(chan struct{}, 1)
			senders[i] = ch
			go func() {
				parked.Done()
				<-ch
				finished.Done()
			}()
		}
		parked.Wait()
		runtime.Gosched()
		perTask := (peakRSS() - base) / idleTasks
		for _, ch := range senders {
			ch <- struct{}{}
		}
		finished.Wait()
		return perTask
	})
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s <workload> <threads>\n", os.Args[0])
		os.Exit(2)
	}
	name := os.Args[1]
	threads, err := strconv.Atoi(os.Args[2])
	if err != nil || threads < 0 {
		fmt.Fprintln(os.Stderr, "threads: a number >= 0")
		os.Exit(2)
	}
	procs := threads
	if procs == 0 {
		procs = 1
	}
	runtime.GOMAXPROCS(procs)
	var value float64
	unit := "ns/op"
	switch name {
	case "spawn_many":
		value = benchSpawnMany()
	case "spawn_remote":
		value = benchSpawnRemote()
	case "yield_many":
		value = benchYieldMany()
	case "ping_pong":
		value = benchPingPong()
	case "chained_spawn":
		value = benchChainedSpawn()
	case "mpsc_uncontended":
		value, unit = benchMpsc(1), "ops/s"
	case "mpsc_contended":
		value, unit = benchMpsc(mpscProducers), "ops/s"
	case "request_reply":
		value = benchRequestReply()
	case "idle_tasks":
		value, unit = benchIdleTasks(), "bytes"
	default:
		fmt.Fprintf(os.Stderr, "go_bench: workload %s not implemented\n", name)
		os.Exit(77)
	}
	report(name, threads, value, unit)
}
